"""Budgets, the plans they compile to, and the one executor that runs them."""
