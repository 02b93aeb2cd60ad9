"""Torch models: the bundled text encoder and the sparse autoencoder (CSR)."""
