"""The seed's ``User`` and ``Post``, plus ``Comment`` and ``Tag`` for the eager-loading lessons.

``User`` and ``Post`` keep the seed's columns, uniqueness and relationships (including
``lazy="selectin"`` on ``User.posts``). Changes from the seed, and why:

* ``created_at`` is ``timestamptz`` with a server default ``now()`` instead of
  ``default=datetime.utcnow`` (deprecated since Python 3.12, and naive): the database clock,
  aware values, and the same default for rows written by COPY or plain SQL.
* ``is_active`` also gets a server default, so the migration and the model agree.
* ``Post`` gains ``created_at`` (activity over time in the notebooks) and an index on
  ``author_id`` (the column every "posts of a user" query filters on).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, Text, func, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from toolkit.models.base import Base

post_tags = Table(
    "post_tags",
    Base.metadata,
    Column("post_id", ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)
"""Association table of the many-to-many ``Post.tags`` / ``Tag.posts``."""


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)

    # Relationships
    posts: Mapped[list[Post]] = relationship(back_populates="author", lazy="selectin")
    comments: Mapped[list[Comment]] = relationship(back_populates="author")

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, email={self.email!r}, name={self.name!r})"


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)

    # Relationships
    author: Mapped[User] = relationship(back_populates="posts")
    comments: Mapped[list[Comment]] = relationship(
        back_populates="post", cascade="all, delete-orphan", passive_deletes=True
    )
    tags: Mapped[list[Tag]] = relationship(secondary=post_tags, back_populates="posts")

    def __repr__(self) -> str:
        return f"Post(id={self.id!r}, title={self.title!r}, author_id={self.author_id!r})"


class Comment(Base):
    """A comment on a post by a user: nested loading (users -> posts -> comments)."""

    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    post: Mapped[Post] = relationship(back_populates="comments")
    author: Mapped[User] = relationship(back_populates="comments")

    def __repr__(self) -> str:
        return f"Comment(id={self.id!r}, post_id={self.post_id!r}, author_id={self.author_id!r})"


class Tag(Base):
    """A tag: many-to-many with posts through ``post_tags``."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)

    posts: Mapped[list[Post]] = relationship(secondary=post_tags, back_populates="tags")

    def __repr__(self) -> str:
        return f"Tag(id={self.id!r}, name={self.name!r})"
