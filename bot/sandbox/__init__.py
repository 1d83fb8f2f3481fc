"""The sandbox: a fake WeChat API server, the chat simulator and the demo school. Never imported by production
code: `houqin demo` and the tests reach it, and the app loads the simulator only while HOUQIN_SIMULATOR is on."""
