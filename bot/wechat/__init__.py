"""The WeChat transport: webhook, message crypto, inbox (dedup and the 4.5 s rule), router to the handlers,
the outbound API client and the outbox sender, the custom menu."""
