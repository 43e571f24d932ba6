"""The one type of error that is the user's to fix: bad input (a path, a flag's value, a space file, a study
that is not there). Its message is one line saying what is wrong and what to do; `hpsearch` shows it as such,
with exit code 2. Every other exception is a bug in hpsearch and shows its traceback (search.errors).

Here, on trainers' floor, so that trainers/, spaces/ and search/ all raise it."""


class InputError(Exception):
    """Input that cannot be used; the message is one line telling the user what to do."""
