"""Market data: the simulated price path, the embedded simulator and the feed client."""
