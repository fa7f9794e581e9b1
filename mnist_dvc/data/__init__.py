"""MNIST: its facts, where a copy comes from, and the raw and prepared files the stages pass on."""
