"""What is computed, shared by the coordinator and the nodes: schema, encoding, models, metrics."""
