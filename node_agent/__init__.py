"""The node agent: what a partner runs at home (Flower ClientApp, local policy veto, anonymization, DP training)."""
