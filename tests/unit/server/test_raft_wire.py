"""What the raft glue changes in pysyncobj's wire handling, the format staying the same.

* pickles of commands and messages (``raft.glue.RAFT_PICKLE_PROTOCOL``): an entry's payload bytes
  are written as they are, and what a node before the change wrote still reads;
* the encryptor (``raft.glue.VerifyOnceEncryptor``): each received message is checked once, and
  a message that fails the check is still refused.
"""

from __future__ import annotations

import base64
import pickle
import zlib

import pytest
from cryptography.fernet import InvalidToken
from pysyncobj import pickle as pysyncobj_pickle
from pysyncobj.encryptor import getEncryptor

from nomadd.server.raft import glue
from nomadd.structs.codec import pack
from nomadd.structs.requests.variables import VarUpsertEntry

# msgpack of a real entry: bytes >= 0x80 everywhere (lengths, ints, binary data)
PAYLOAD = pack(VarUpsertEntry(namespace="default", path="p", key_id="k", data=bytes(range(256)) * 4, time=1))


def test_a_command_carries_its_payload_bytes_as_they_are() -> None:
    command = pysyncobj_pickle.dumps((0, (16, PAYLOAD)))  # what @replicated proposes
    assert command[:2] == pickle.PROTO + bytes([glue.RAFT_PICKLE_PROTOCOL])
    assert PAYLOAD in command  # not str(payload, "latin1") re-encoded as UTF-8
    assert len(command) < len(PAYLOAD) + 64
    assert pysyncobj_pickle.loads(command) == (0, (16, PAYLOAD))


def test_an_append_entries_message_carries_the_commands_as_they_are() -> None:
    command = b"\x00" + pysyncobj_pickle.dumps((0, (16, PAYLOAD)))
    message = {"type": "append_entries", "term": 3, "entries": [(command, 7, 3)], "prevLogIdx": 6}
    wire = zlib.compress(pysyncobj_pickle.dumps(message), 3)  # as TcpConnection.send
    assert command in zlib.decompress(wire)
    assert pysyncobj_pickle.loads(zlib.decompress(wire)) == message


def test_protocol_2_pickles_of_an_older_node_or_journal_still_read() -> None:
    old_command = pickle.dumps((0, (16, PAYLOAD)), 2)
    assert PAYLOAD not in old_command  # protocol 2 re-encodes bytes
    assert pysyncobj_pickle.loads(old_command) == (0, (16, PAYLOAD))
    old_message = pickle.dumps({"type": "append_entries", "entries": [(b"\x00" + old_command, 7, 3)]}, 2)
    entries = pysyncobj_pickle.loads(old_message)["entries"]
    assert pysyncobj_pickle.loads(entries[0][0][1:]) == (0, (16, PAYLOAD))


def _tampered(token: bytes) -> bytes:
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[40] ^= 1  # a ciphertext byte
    return base64.urlsafe_b64encode(bytes(raw))


def test_the_encryptor_reads_a_message_as_fernet_does() -> None:
    fernet = getEncryptor("a raft secret of 16+ chars")
    enc = glue.VerifyOnceEncryptor(getEncryptor("a raft secret of 16+ chars"))
    token = enc.encrypt_at_time(PAYLOAD, 1234)
    assert fernet.decrypt(token) == PAYLOAD  # the same wire format both ways
    # as TcpConnection.__processParseMessage: the timestamp, then the plaintext
    assert enc.extract_timestamp(token) == fernet.extract_timestamp(token) == 1234
    assert enc.decrypt(token) == PAYLOAD
    other = fernet.encrypt_at_time(b"other", 1235)
    assert enc.decrypt(other) == b"other"  # not the token just checked: decrypted in full


def test_the_encryptor_still_refuses_a_tampered_or_foreign_message() -> None:
    enc = glue.VerifyOnceEncryptor(getEncryptor("a raft secret of 16+ chars"))
    token = enc.encrypt_at_time(PAYLOAD, 1234)
    with pytest.raises(InvalidToken):
        enc.extract_timestamp(_tampered(token))
    with pytest.raises(InvalidToken):
        enc.decrypt(_tampered(token))
    foreign = getEncryptor("another secret, 16+ chars").encrypt_at_time(PAYLOAD, 1234)
    with pytest.raises(InvalidToken):
        enc.extract_timestamp(foreign)
    enc.extract_timestamp(token)
    with pytest.raises(InvalidToken):  # a checked token's plaintext is for that token alone
        enc.decrypt(_tampered(token))
