"""The outside world: the ASGI app (bot.app:app), settings and the runtime, and as sub-packages the WeChat
transport (wechat/), the admin console (console/), the command line (cli/) and the demo sandbox (sandbox/)."""
