"""Persistence of the broker, shaped as Flower's linkstate family.

- ``repository``: the interfaces, one per concept (participants, studies, registries, ledger, audit
  log) and ``BrokerStore``, all of them;
- ``sql/`` (SQLite, PostgreSQL; ``models``, ``db``, ``chain_io``, ``group_commit`` beneath it) and
  ``memory`` (one process, tests and demos): the implementations;
- ``factory.open_store``: a store from a URL;
- ``ledger_flow`` and ``changes``: what a change does, written once for every implementation (the
  ledger's rules themselves are ``trust_broker.ledger.decisions``); ``linking``: the audit chain's
  links, with no database.

A new store implements ``BrokerStore`` on a ``ledger_flow.LedgerBook`` of its own, is added to the
factory, and joins the contract suite's parameters (``tests/trust_broker/store``).
"""
