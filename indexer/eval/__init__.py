"""Quality and cost: metrics, evaluation against exact search and relevance, sweeps."""
