"""A canonical text dump of a decoded message, identical to clients/c/conformance.c's for the same
message: one line per field, `path=value`, fields by number, every scalar (defaults too), strings and
bytes as hex, floats with 9 and doubles with 17 significant digits, map entries sorted by key bytes,
an unset message field as `<absent>`, only the set member of a oneof. proto3 `optional` strings print
their value ("" when absent): protobuf-c 1.4 has no presence for them (docs/PROTOCOL.md §11)."""
from google.protobuf.descriptor import FieldDescriptor as F

_FLOAT = (F.TYPE_FLOAT,)
_DOUBLE = (F.TYPE_DOUBLE,)


def _scalar(field, value):
    t = field.type
    if t in _FLOAT:
        return "%.9g" % value
    if t in _DOUBLE:
        return "%.17g" % value
    if t == F.TYPE_STRING:
        return value.encode("utf-8").hex()
    if t == F.TYPE_BYTES:
        return bytes(value).hex()
    if t == F.TYPE_BOOL:
        return "1" if value else "0"
    return str(int(value))


def _is_synthetic(oneof):
    return oneof.name.startswith("_") and len(oneof.fields) == 1 and oneof.fields[0].name == oneof.name[1:]


def dump(message, prefix="", signed_zero=True):
    """The dump's lines; with signed_zero False, -0 prints as 0 (protobuf-c re-encodes -0.0 as nothing,
    that is +0.0: it skips every float equal to zero)."""
    lines = []
    def scalar(f, v):
        text = _scalar(f, v)
        return "0" if not signed_zero and text == "-0" else text
    descriptor = message.DESCRIPTOR
    for field in sorted(descriptor.fields, key=lambda f: f.number):
        path = prefix + field.name
        oneof = field.containing_oneof
        if oneof is not None and not _is_synthetic(oneof):
            if message.WhichOneof(oneof.name) != field.name:
                continue
        value = getattr(message, field.name)
        if field.label == F.LABEL_REPEATED:
            if field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
                key_field = field.message_type.fields_by_name["key"]
                value_field = field.message_type.fields_by_name["value"]
                entries = sorted(value.items(), key=lambda kv: kv[0].encode("utf-8") if isinstance(kv[0], str) else kv[0])
                lines.append(f"{path}#={len(entries)}")
                for k, v in entries:
                    lines.append(f"{path}[{scalar(key_field, k)}]={scalar(value_field, v)}")
                continue
            lines.append(f"{path}#={len(value)}")
            for i, item in enumerate(value):
                if field.type == F.TYPE_MESSAGE:
                    lines.extend(dump(item, f"{path}[{i}].", signed_zero))
                else:
                    lines.append(f"{path}[{i}]={scalar(field, item)}")
            continue
        if field.type == F.TYPE_MESSAGE:
            if not message.HasField(field.name):
                lines.append(f"{path}=<absent>")
            else:
                lines.extend(dump(value, path + ".", signed_zero))
            continue
        lines.append(f"{path}={scalar(field, value)}")
    return lines


def has_unknown_fields(message):
    """Whether a decoded message kept fields its schema does not name, at any depth (there should be
    none): dropping them must not change its encoded size. (protobuf 4.21's upb backend has no
    UnknownFields() accessor.)"""
    copy = type(message)()
    copy.CopyFrom(message)
    copy.DiscardUnknownFields()
    return copy.ByteSize() != message.ByteSize()
