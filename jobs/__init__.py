"""Scheduler set-up and job functions; jobs call the same storage services as the chat handlers."""
