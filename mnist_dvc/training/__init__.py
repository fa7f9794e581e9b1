"""The study's training: the network, its callbacks, the JAX loop, resuming, stopping, and models/."""
