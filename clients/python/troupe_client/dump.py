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


def dump(message, prefix=""):
    lines = []
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
                    lines.append(f"{path}[{_scalar(key_field, k)}]={_scalar(value_field, v)}")
                continue
            lines.append(f"{path}#={len(value)}")
            for i, item in enumerate(value):
                if field.type == F.TYPE_MESSAGE:
                    lines.extend(dump(item, f"{path}[{i}]."))
                else:
                    lines.append(f"{path}[{i}]={_scalar(field, item)}")
            continue
        if field.type == F.TYPE_MESSAGE:
            if not message.HasField(field.name):
                lines.append(f"{path}=<absent>")
            else:
                lines.extend(dump(value, path + "."))
            continue
        lines.append(f"{path}={_scalar(field, value)}")
    return lines


def unknown_field_paths(message, prefix=""):
    """Where a decoded message kept fields its schema does not name (there should be none)."""
    found = []
    if hasattr(message, "UnknownFields") and len(message.UnknownFields()) > 0:
        found.append(prefix or "<top>")
    for field in message.DESCRIPTOR.fields:
        if field.type != F.TYPE_MESSAGE:
            continue
        value = getattr(message, field.name)
        if field.label == F.LABEL_REPEATED:
            if field.message_type.GetOptions().map_entry:
                continue
            for i, item in enumerate(value):
                found.extend(unknown_field_paths(item, f"{prefix}{field.name}[{i}]."))
        elif message.HasField(field.name):
            found.extend(unknown_field_paths(value, f"{prefix}{field.name}."))
    return found
