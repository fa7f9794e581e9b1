"""Starting a stage's process: the Keras backend, its devices, and jobs of several processes."""
