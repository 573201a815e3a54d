#!/usr/bin/env python3
"""Writes the foreign password hash vectors the service's tests read.

Each vector is made by an independent implementation (Python's bcrypt,
passlib, Django and Werkzeug), at low costs so the tests stay quick:
    python3 -m pip install bcrypt passlib argon2-cffi django werkzeug
    python3 scripts/foreign-hash-vectors.py > services/access/src/passwords/foreign_vectors.json
"""
import base64
import hashlib
import json
import os

import bcrypt
import django
from django.conf import settings
from passlib import hash as ph
from werkzeug.security import generate_password_hash

settings.configure(
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ]
)
django.setup()
from django.contrib.auth.hashers import PBKDF2PasswordHasher, ScryptPasswordHasher  # noqa: E402


class QuickPbkdf2(PBKDF2PasswordHasher):
    iterations = 1000


class QuickScrypt(ScryptPasswordHasher):
    work_factor = 2**10


def django_style_sha512(password, rounds=1000):
    """Django's layout with SHA-512 (custom hashers store it so), by hashlib."""
    salt = base64.b32encode(os.urandom(10)).decode().lower()
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt.encode(), rounds)
    return f"pbkdf2_sha512${rounds}${salt}${base64.b64encode(digest).decode()}"


PASSWORDS = ["Correct horse 7", "pässwörd-ünïcode", "x" * 80]


def made(password):
    pw = password.encode()
    b = bcrypt.hashpw(pw[:72], bcrypt.gensalt(4)).decode()
    return [
        ("bcrypt", "python bcrypt $2b$", b),
        ("bcrypt", "python bcrypt as $2a$", "$2a$" + b[4:]),
        ("bcrypt", "python bcrypt as $2y$ (PHP)", "$2y$" + b[4:]),
        ("pbkdf2-sha256", "passlib pbkdf2_sha256", ph.pbkdf2_sha256.using(rounds=1000).hash(password)),
        ("pbkdf2-sha512", "passlib pbkdf2_sha512", ph.pbkdf2_sha512.using(rounds=1000).hash(password)),
        ("pbkdf2-sha256", "passlib django_pbkdf2_sha256", ph.django_pbkdf2_sha256.using(rounds=1000).hash(password)),
        ("pbkdf2-sha256", "Django PBKDF2PasswordHasher", QuickPbkdf2().encode(password, QuickPbkdf2().salt())),
        ("pbkdf2-sha512", "Django-style pbkdf2_sha512 (hashlib)", django_style_sha512(password)),
        ("pbkdf2-sha256", "Werkzeug pbkdf2:sha256", generate_password_hash(password, "pbkdf2:sha256:1000")),
        ("pbkdf2-sha512", "Werkzeug pbkdf2:sha512", generate_password_hash(password, "pbkdf2:sha512:1000")),
        ("argon2id", "passlib argon2 (argon2-cffi) id", ph.argon2.using(type="ID", memory_cost=1024, rounds=1, parallelism=2).hash(password)),
        ("argon2i", "passlib argon2 (argon2-cffi) i", ph.argon2.using(type="I", memory_cost=1024, rounds=2, parallelism=1).hash(password)),
        ("scrypt", "passlib scrypt", ph.scrypt.using(rounds=10, block_size=8, parallelism=1).hash(password)),
        ("scrypt", "Django ScryptPasswordHasher", QuickScrypt().encode(password, QuickScrypt().salt())),
        ("scrypt", "Werkzeug scrypt", generate_password_hash(password, "scrypt:1024:8:1")),
    ]


vectors = [
    {"scheme": scheme, "made_by": by, "password": password, "hash": h}
    for password in PASSWORDS
    for scheme, by, h in made(password)
]
print(json.dumps(vectors, indent=1, ensure_ascii=False))
