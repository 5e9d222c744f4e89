"""The one base of every error that is the user's to fix: the CLI prints it as one clear line, not a traceback."""


class UserError(Exception):
    """Bad input (a recipe, data, a git state, an option); the message names what is wrong and the fix."""


USER_ERRORS = (UserError,)
