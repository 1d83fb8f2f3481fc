"""One module per domain: parse the message, call a service, format the reply. No SQL, no XML, no HTTP."""
