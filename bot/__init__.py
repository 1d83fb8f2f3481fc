"""Transport and kernel: app factory, configuration, WeChat webhook, crypto, dedup, routing, outbound client."""
