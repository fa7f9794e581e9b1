"""The stages of the MNIST DNN pipeline: fetch -> preprocess -> train -> evaluate."""
