import pytest

from voxline.security.secret_box import CorruptSecret, SecretBox, WrongServerSecret

SERVER_SECRET = b"server-secret-" + b"s" * 50
WORKSPACE = "ws_01jnc8y0w6zk3t9q2m5r7v4b8f"
VALUE = "sk-live-" + "v" * 40


def seal(box: SecretBox, value: str = VALUE, name: str = "openai") -> bytes:
    return box.seal(value, workspace_id=WORKSPACE, name=name)


def test_a_sealed_value_opens_to_the_original() -> None:
    box = SecretBox(SERVER_SECRET)
    assert box.open(seal(box), workspace_id=WORKSPACE, name="openai") == VALUE


def test_another_box_with_the_same_server_secret_opens_it() -> None:
    sealed = seal(SecretBox(SERVER_SECRET))
    assert SecretBox(SERVER_SECRET).open(sealed, workspace_id=WORKSPACE, name="openai") == VALUE


def test_a_sealed_value_is_versioned_and_holds_no_plaintext() -> None:
    sealed = seal(SecretBox(SERVER_SECRET))
    assert sealed.startswith(b"v1")
    assert VALUE.encode() not in sealed


def test_sealing_twice_uses_a_fresh_nonce() -> None:
    box = SecretBox(SERVER_SECRET)
    assert seal(box) != seal(box)


def test_non_ascii_values_round_trip() -> None:
    box = SecretBox(SERVER_SECRET)
    assert box.open(seal(box, "clé-ünïcødé"), workspace_id=WORKSPACE, name="openai") == (
        "clé-ünïcødé"
    )


def test_a_different_server_secret_is_refused_clearly() -> None:
    sealed = seal(SecretBox(SERVER_SECRET))
    with pytest.raises(WrongServerSecret, match="different server secret"):
        SecretBox(b"another-secret").open(sealed, workspace_id=WORKSPACE, name="openai")


def test_a_flipped_ciphertext_byte_is_refused() -> None:
    box = SecretBox(SERVER_SECRET)
    sealed = bytearray(seal(box))
    sealed[-1] ^= 1
    with pytest.raises(CorruptSecret, match="altered"):
        box.open(bytes(sealed), workspace_id=WORKSPACE, name="openai")


def test_a_value_moved_to_another_name_is_refused() -> None:
    box = SecretBox(SERVER_SECRET)
    with pytest.raises(CorruptSecret):
        box.open(seal(box), workspace_id=WORKSPACE, name="anthropic")


def test_a_value_moved_to_another_workspace_is_refused() -> None:
    box = SecretBox(SERVER_SECRET)
    with pytest.raises(CorruptSecret):
        box.open(seal(box), workspace_id="ws_01jnc8y0w6zk3t9q2m5r7v4b8g", name="openai")


def test_workspace_and_name_boundaries_cannot_be_shifted() -> None:
    box = SecretBox(SERVER_SECRET)
    sealed = box.seal(VALUE, workspace_id="ws_a", name="bc")
    with pytest.raises(CorruptSecret):
        box.open(sealed, workspace_id="ws_ab", name="c")


def test_an_unknown_format_version_is_refused() -> None:
    box = SecretBox(SERVER_SECRET)
    sealed = b"v9" + seal(box)[2:]
    with pytest.raises(CorruptSecret, match="unknown format"):
        box.open(sealed, workspace_id=WORKSPACE, name="openai")


def test_a_truncated_value_is_refused() -> None:
    box = SecretBox(SERVER_SECRET)
    with pytest.raises(CorruptSecret, match="too short"):
        box.open(seal(box)[:20], workspace_id=WORKSPACE, name="openai")


def test_errors_never_quote_the_value() -> None:
    box = SecretBox(SERVER_SECRET)
    with pytest.raises(CorruptSecret) as caught:
        box.open(seal(box), workspace_id=WORKSPACE, name="other")
    assert VALUE not in str(caught.value)


def test_the_repr_shows_no_key_material() -> None:
    assert SERVER_SECRET.decode() not in repr(SecretBox(SERVER_SECRET))


def test_an_empty_server_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        SecretBox(b"")
