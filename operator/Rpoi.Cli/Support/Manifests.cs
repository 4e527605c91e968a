using System.Text.Json.Nodes;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Protocol.Messages;
using RatingResource = Rpoi.Operator.Entities.Rating;

namespace Rpoi.Cli.Support;

/// <summary>The Kubernetes objects the CLI writes: a Lease carrying E(m), a Rating carrying E(m'').</summary>
public static class Manifests
{
    /// <summary>Name of the renter's Rating for a lease.</summary>
    public static string RenterRatingName(string leaseName) => $"{leaseName}-renter";

    /// <summary>
    /// A Lease whose spec.request is <paramref name="signedRequest"/>, bound (by the signature) to its namespace and name.
    /// It carries the operator's finalizer from the start: the operator then need not patch it in (one API write less per
    /// lease), and a Lease deleted before the operator ever saw it still passes through the operator's return.
    /// </summary>
    public static JsonObject Lease(Signed<LeaseRequest> signedRequest, long? ratingWindowSeconds)
    {
        ArgumentNullException.ThrowIfNull(signedRequest);
        var m = signedRequest.Payload;
        var spec = new JsonObject { ["request"] = JsonNode.Parse(signedRequest.ToJson()) };
        if (ratingWindowSeconds is { } w)
        {
            spec["ratingWindowSeconds"] = w;
        }

        return new JsonObject
        {
            ["apiVersion"] = $"{Operator.Entities.Lease.Group}/{Operator.Entities.Lease.Version}",
            ["kind"] = Operator.Entities.Lease.KindName,
            ["metadata"] = new JsonObject
            {
                ["name"] = m.Lease.Name,
                ["namespace"] = m.Lease.Namespace,
                ["finalizers"] = new JsonArray(LeaseConditions.Finalizer),
            },
            ["spec"] = spec,
        };
    }

    /// <summary>The renter's Rating of a lease, carrying E(m'').</summary>
    public static JsonObject RenterRating(string @namespace, string leaseName, Signed<RenterRating> signedRating)
    {
        ArgumentNullException.ThrowIfNull(signedRating);
        var rating = signedRating.Payload.Rating;
        var spec = new JsonObject
        {
            ["leaseRef"] = new JsonObject { ["name"] = leaseName },
            ["rater"] = nameof(Rater.Renter),
            ["score"] = rating.Score,
        };
        if (rating.Comment.Length > 0)
        {
            spec["comment"] = rating.Comment;
        }

        spec["signedRating"] = JsonNode.Parse(signedRating.ToJson());
        return new JsonObject
        {
            ["apiVersion"] = $"{Operator.Entities.Lease.Group}/{Operator.Entities.Lease.Version}",
            ["kind"] = RatingResource.KindName,
            ["metadata"] = new JsonObject { ["name"] = RenterRatingName(leaseName), ["namespace"] = @namespace },
            ["spec"] = spec,
        };
    }

    /// <summary>The leaser's Rating (no signature in YAML: the operator signs Ra_β with β's key).</summary>
    public static JsonObject LeaserRating(string @namespace, string leaseName, int score, string comment)
    {
        var spec = new JsonObject
        {
            ["leaseRef"] = new JsonObject { ["name"] = leaseName },
            ["rater"] = nameof(Rater.Leaser),
            ["score"] = score,
        };
        if (comment.Length > 0)
        {
            spec["comment"] = comment;
        }

        return new JsonObject
        {
            ["apiVersion"] = $"{Operator.Entities.Lease.Group}/{Operator.Entities.Lease.Version}",
            ["kind"] = RatingResource.KindName,
            ["metadata"] = new JsonObject { ["name"] = $"{leaseName}-leaser", ["namespace"] = @namespace },
            ["spec"] = spec,
        };
    }

    /// <summary>The object as YAML (with <paramref name="comments"/> on top) or as indented JSON.</summary>
    public static string Render(JsonObject manifest, string format, IEnumerable<string> comments)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        if (format == "json")
        {
            return manifest.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n";
        }

        var header = string.Concat(comments.Select(c => "# " + c + "\n"));
        return header + Yaml.Write(manifest);
    }
}
