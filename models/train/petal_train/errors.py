class RecipeError(Exception):
    """A user-facing problem (bad input, missing file); printed as one line, exit status 2."""


class DataError(RecipeError):
    pass


class CheckpointError(RecipeError):
    pass
