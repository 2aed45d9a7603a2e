"""What crosses a process boundary: the broker API's bodies and the Flower records, one definition each.

Nodes, the coordinator and the broker import their messages from here, so a message has a single
shape and a single codec (``to_record`` / ``from_record`` for Flower, pydantic for HTTP). The
package does no I/O and loads no server library: importing the broker's client must not bring the
broker's web framework or its database into a node (``tests/contracts/test_client_imports.py``).
It imports nothing from the project but the value types it carries: the governance model's
(``policies.models``) and the tasks' releases (``tasks``) — leaves both.
"""
