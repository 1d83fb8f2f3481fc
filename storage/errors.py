"""Errors a user should see. The router turns them into replies in one place."""


class UserError(Exception):
    """A refusal or validation failure, explained in plain Chinese to the person who sent the message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(UserError):
    """A record that does not exist or that this person may not see: the same reply either way."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"未找到 {ref}")
        self.ref = ref


class Forbidden(UserError):
    def __init__(self, what: str, who: str) -> None:
        super().__init__(f"无权限：{what}仅限{who}使用。")
