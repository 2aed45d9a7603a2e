"""The node agent: what a partner runs at home (ClientApp, policy veto, anonymization, DP-SGD)."""
