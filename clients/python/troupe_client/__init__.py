"""The reference Python actor of Troupe's wire protocol (docs/PROTOCOL.md): framing, weights, the
conversation with a learner, and a pluggable sampler. See clients/python/README.md."""
