"""``nomadd operator api``: one HTTP API request with the CLI's address, token and TLS settings,
like curl (Nomad's ``nomad operator api``).

The argument is a path (``/v1/jobs?prefix=web``) or a whole URL, whose scheme, host and port
then replace the address. ``-X`` sets the method (default GET); for PUT, POST and PATCH a body
piped on standard input is sent. ``-H 'Name: value'`` adds headers, ``-filter`` a ``filter=``
expression; ``-region`` and ``-namespace`` become query parameters. The answer's body goes to
standard output unchanged; an HTTP error status exits 1 with the body on standard error.
``-dryrun`` prints the equivalent curl command instead (with the token and TLS files spelled
out, so it runs where nomadd is not installed); ``-verbose`` prints the request line, and the
answer's headers or error status, to standard error.
"""

from __future__ import annotations

import os
import shlex
import sys
import urllib.parse

from nomadd.api.client import Client
from nomadd.cli import meta

USAGE = "nomadd operator api [options] <path or URL>"
BODY_METHODS = ("PUT", "POST", "PATCH")


def _headers(raw: object) -> dict[str, str] | str:
    out: dict[str, str] = {}
    for item in raw if isinstance(raw, list | tuple) else ():
        name, sep, value = str(item).partition(":")
        if not sep or not name.strip():
            return f"Invalid header {item!r}: expected 'Name: value'"
        out[name.strip()] = value.strip()
    return out


def _curl(client: Client, method: str, url: str, headers: dict[str, str], body: bool) -> str:
    words = ["curl", "-X", method]
    if client.token:
        words += ["-H", f"X-Nomad-Token: {client.token}"]
    for name, value in headers.items():
        words += ["-H", f"{name}: {value}"]
    tls = client.tls
    if url.startswith("https://"):
        words += ["--cacert", tls.ca_cert] if tls.ca_cert else []
        words += ["--capath", tls.ca_path] if tls.ca_path else []
        words += ["--cert", tls.client_cert] if tls.client_cert else []
        words += ["--key", tls.client_key] if tls.client_key else []
        words += ["--insecure"] if tls.skip_verify else []
    if body:
        words += ["--data-binary", "@-"]
    return " ".join(shlex.quote(w) for w in [*words, url])


def run(args: list[str]) -> int:
    fs = meta.new_flagset("operator api")
    fs.string("X", "The HTTP method (default GET).", placeholder="<method>")
    fs.strings("H", "An HTTP header 'Name: value'; may be repeated.", placeholder="<header>")
    fs.string("filter", "A filter expression for the list (the filter= query parameter).")
    fs.bool("dryrun", "Print the equivalent curl command instead of sending the request.")
    fs.bool("verbose", "Print the request, and the answer's headers or status, to standard error.")
    parsed = meta.parse_one(fs, args, USAGE, "<path or URL>")
    if parsed is None:
        return 1
    opts, target = parsed
    headers = _headers(opts.get("H", ()))
    if isinstance(headers, str):
        return meta.fail(headers)
    if "://" in target:
        parts = urllib.parse.urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return meta.fail(f"Invalid URL {target!r}: expected http(s)://host:port/path")
        opts = {**opts, "address": f"{parts.scheme}://{parts.netloc}"}
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    if not target.startswith("/"):
        return meta.fail(f"Invalid path {target!r}: it must start with /")
    path, _, query = target.partition("?")
    params: list[tuple[str, str]] = urllib.parse.parse_qsl(query, keep_blank_values=True)
    for name in ("filter", "namespace"):
        value = opts.get(name) or (os.environ.get("NOMAD_NAMESPACE", "") if name == "namespace" else "")
        if value:
            params.append((name, str(value)))
    client = meta.api_client(opts)
    method = str(opts.get("X", "GET")).upper()
    query_params = {k: [v for kk, v in params if kk == k] for k, _ in params}
    url = client.url(path, query_params)
    send_body = method in BODY_METHODS and not sys.stdin.isatty()
    if opts.get("dryrun"):
        print(_curl(client, method, url, headers, send_body))
        return 0
    data = sys.stdin.buffer.read() if send_body else None
    if opts.get("verbose"):
        print(f"> {method} {url}", file=sys.stderr)
    try:
        body, answer = client.raw(method, path, query_params, data, "application/json", headers)
    except meta.APIError as err:
        if opts.get("verbose"):
            print(f"< {err.status}", file=sys.stderr)
        return meta.fail(f"Error performing request: {err}")
    if opts.get("verbose"):
        for name, value in answer.items():
            print(f"< {name}: {value}", file=sys.stderr)
    sys.stdout.buffer.write(body)
    sys.stdout.flush()
    return 0
