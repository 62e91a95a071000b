"""Our own Twilio errors. Callers never see TwilioRestException or requests' exceptions.

`permanent` errors (bad credentials, invalid or unavailable number, bad request)
are never retried; `transient` ones (429, 5xx, timeouts, dropped connections) are.
`ambiguous` marks a transient failure after which Twilio may or may not have
carried out a non-idempotent request (read timeout or reset after sending a POST):
the caller must look before trying again.
"""

AUTHENTICATION_FAILED = 20003
NOT_FOUND = 20404
INVALID_PHONE_NUMBER = 21421
NUMBER_UNAVAILABLE = 21422
TOO_MANY_REQUESTS = 20429
ACCOUNT_SUSPENDED = 20005


class TwilioError(Exception):
    permanent = True

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None,
                 more_info: str = "", ambiguous: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.more_info = more_info
        self.ambiguous = ambiguous

    @property
    def transient(self) -> bool:
        return not self.permanent

    def display(self) -> str:
        """The text shown to users: Twilio's message with its error code."""
        return f"{self.message} (Twilio error {self.code})" if self.code else self.message

    def retry_hint(self) -> str:
        """`display()`, prefixed with "try again" when the error is transient (what a form or page says)."""
        if self.transient:
            return f"Twilio is not answering; try again in a moment. ({self.display()})"
        return self.display()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, status={self.status}, message={self.message!r})"


class TwilioPermanentError(TwilioError):
    permanent = True


class TwilioTransientError(TwilioError):
    permanent = False


class TwilioAuthError(TwilioPermanentError):
    """The Account SID / Auth Token (or API key) were refused."""


class TwilioNotFound(TwilioPermanentError):
    pass


class InvalidPhoneNumber(TwilioPermanentError):
    pass


class NumberUnavailable(TwilioPermanentError):
    pass


class TwilioNotConfigured(TwilioPermanentError):
    """Our side lacks what the call needs (no credentials, no parent account for Hosted mode)."""
