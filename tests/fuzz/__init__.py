"""Hostile input for every gRPC method of the running services.

``strategies`` builds hypothesis strategies from the request messages'
descriptors, so a new RPC or field is fuzzed without touching this package;
``world`` sets up two districts with cases and the tokens of every role;
``campaign`` sends the requests and checks each answer (no INTERNAL or
UNKNOWN, every refusal names a field of the request, nothing stored or
published by a refused request). ``scripts/fuzz.sh`` runs 10,000 on a stack
of its own; ``tests/integration/test_fuzz.py`` runs a fixed-seed 500.
"""
