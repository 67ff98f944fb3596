"""The toolkit's ORM models: the seed's ``User`` and ``Post``, plus ``Comment`` and ``Tag``."""

from toolkit.models.base import NAMING_CONVENTION, Base
from toolkit.models.blog import Comment, Post, Tag, User, post_tags

__all__ = ["NAMING_CONVENTION", "Base", "Comment", "Post", "Tag", "User", "post_tags"]
