"""vecdial."""
