"""Input readers and the shipped demo corpus."""
