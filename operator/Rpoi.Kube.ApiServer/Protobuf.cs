using System.Text;
using System.Text.Json.Nodes;

namespace Rpoi.Kube.ApiServer;

/// <summary>
/// Decodes the few protobuf bodies kubectl sends for built-in kinds (typed clientsets write
/// <c>application/vnd.kubernetes.protobuf</c> and do not fall back to JSON on 415): <c>kubectl create namespace</c>,
/// <c>create secret</c>, <c>create configmap</c>, <c>create serviceaccount</c>. ObjectMeta is decoded for every kind
/// (name, generateName, namespace, labels, annotations, finalizers, ownerReferences); the body fields only for
/// Secret, ConfigMap and Namespace. Anything else is answered 415 naming the kind.
/// </summary>
internal static class Protobuf
{
    private static readonly byte[] Magic = "k8s\0"u8.ToArray();

    public static JsonObject Decode(ReadOnlySpan<byte> body)
    {
        if (!body.StartsWith(Magic))
        {
            throw Unsupported("a protobuf body without the k8s envelope");
        }

        var envelope = new Reader(body[Magic.Length..].ToArray());
        string apiVersion = "", kind = "";
        byte[] raw = [];
        while (envelope.Next(out var field, out var wire))
        {
            switch (field)
            {
                case 1:
                    var typeMeta = new Reader(envelope.Bytes());
                    while (typeMeta.Next(out var f, out var w))
                    {
                        if (f == 1)
                        {
                            apiVersion = typeMeta.String();
                        }
                        else if (f == 2)
                        {
                            kind = typeMeta.String();
                        }
                        else
                        {
                            typeMeta.Skip(w);
                        }
                    }

                    break;
                case 2:
                    raw = envelope.Bytes();
                    break;
                default:
                    envelope.Skip(wire);
                    break;
            }
        }

        var obj = new JsonObject { ["apiVersion"] = apiVersion, ["kind"] = kind };
        var r = new Reader(raw);
        while (r.Next(out var field, out var wire))
        {
            switch (kind, field)
            {
                case (_, 1):
                    obj["metadata"] = ObjectMeta(new Reader(r.Bytes()));
                    break;
                case ("Secret", 2):
                    MapEntry(r, obj, "data", bytesValue: true);
                    break;
                case ("Secret", 3):
                    obj["type"] = r.String();
                    break;
                case ("Secret", 4):
                    MapEntry(r, obj, "stringData", bytesValue: false);
                    break;
                case ("Secret", 5):
                case ("ConfigMap", 4):
                    obj["immutable"] = r.Varint() != 0;
                    break;
                case ("ConfigMap", 2):
                    MapEntry(r, obj, "data", bytesValue: false);
                    break;
                case ("ConfigMap", 3):
                    MapEntry(r, obj, "binaryData", bytesValue: true);
                    break;
                case ("Namespace" or "ServiceAccount", _):
                    r.Skip(wire); // spec.finalizers / secrets references: not needed by the server
                    break;
                default:
                    throw Unsupported($"kind {kind} (field {field})");
            }
        }

        return obj;
    }

    private static ApiException Unsupported(string what) =>
        new(415, "UnsupportedMediaType",
            $"the test server decodes protobuf only for Namespace, Secret, ConfigMap and ServiceAccount, not {what}; send application/json");

    private static JsonObject ObjectMeta(Reader r)
    {
        var meta = new JsonObject();
        while (r.Next(out var field, out var wire))
        {
            switch (field)
            {
                case 1:
                    meta["name"] = r.String();
                    break;
                case 2:
                    meta["generateName"] = r.String();
                    break;
                case 3:
                    meta["namespace"] = r.String();
                    break;
                case 6:
                    meta["resourceVersion"] = r.String();
                    break;
                case 11:
                    MapEntry(r, meta, "labels", bytesValue: false);
                    break;
                case 12:
                    MapEntry(r, meta, "annotations", bytesValue: false);
                    break;
                case 13:
                    var refs = meta["ownerReferences"] as JsonArray ?? [];
                    meta["ownerReferences"] = refs;
                    refs.Add(OwnerReference(new Reader(r.Bytes())));
                    break;
                case 14:
                    var finalizers = meta["finalizers"] as JsonArray ?? [];
                    meta["finalizers"] = finalizers;
                    finalizers.Add(r.String());
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }

        return meta;
    }

    private static JsonObject OwnerReference(Reader r)
    {
        var o = new JsonObject();
        while (r.Next(out var field, out var wire))
        {
            switch (field)
            {
                case 1: o["kind"] = r.String(); break;
                case 3: o["name"] = r.String(); break;
                case 4: o["uid"] = r.String(); break;
                case 5: o["apiVersion"] = r.String(); break;
                case 6: o["controller"] = r.Varint() != 0; break;
                case 7: o["blockOwnerDeletion"] = r.Varint() != 0; break;
                default: r.Skip(wire); break;
            }
        }

        return o;
    }

    private static void MapEntry(Reader r, JsonObject target, string property, bool bytesValue)
    {
        var entry = new Reader(r.Bytes());
        string key = "";
        JsonNode? value = null;
        while (entry.Next(out var field, out var wire))
        {
            if (field == 1)
            {
                key = entry.String();
            }
            else if (field == 2)
            {
                var bytes = entry.Bytes();
                value = bytesValue ? Convert.ToBase64String(bytes) : Encoding.UTF8.GetString(bytes);
            }
            else
            {
                entry.Skip(wire);
            }
        }

        var map = target[property] as JsonObject ?? [];
        target[property] = map;
        map[key] = value ?? (bytesValue ? "" : "");
    }

    private sealed class Reader(byte[] data)
    {
        private int _pos;

        public bool Next(out int field, out int wire)
        {
            if (_pos >= data.Length)
            {
                field = wire = 0;
                return false;
            }

            var key = Varint();
            field = (int)(key >> 3);
            wire = (int)(key & 7);
            return true;
        }

        public ulong Varint()
        {
            ulong result = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= data.Length)
                {
                    throw Unsupported("a truncated protobuf body");
                }

                var b = data[_pos++];
                result |= (ulong)(b & 0x7f) << shift;
                if ((b & 0x80) == 0)
                {
                    return result;
                }
            }

            throw Unsupported("a malformed protobuf varint");
        }

        public byte[] Bytes()
        {
            var length = (int)Varint();
            if (length < 0 || _pos + length > data.Length)
            {
                throw Unsupported("a truncated protobuf body");
            }

            var bytes = data.AsSpan(_pos, length).ToArray();
            _pos += length;
            return bytes;
        }

        public string String() => Encoding.UTF8.GetString(Bytes());

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: _pos += 8; break;
                case 2: Bytes(); break;
                case 5: _pos += 4; break;
                default: throw Unsupported($"protobuf wire type {wire}");
            }
        }
    }
}
