namespace Rpoi.Operator.PhaseOne.Allocation;

/// <summary>
/// Whether a request can ever be met by the cluster as it is: a shape's <em>room</em> is the chips of its usable slices
/// (every node pool of that accelerator and topology together; shapes never share nodes). A request for more than the
/// room, or for a shape no pool offers, would wait forever, so it is refused before anything is pledged. Pure.
/// </summary>
public static class RoomCheck
{
    /// <summary>
    /// Null when <paramref name="chips"/> of <paramref name="shape"/> fit in the shape's room (now or once leases end), else a
    /// message naming the request field at fault, what the cluster offers, and the fix.
    /// </summary>
    /// <param name="shape">The requested accelerator and topology.</param>
    /// <param name="chips">The requested chips.</param>
    /// <param name="room">The shape's capacity, or null when no node has that accelerator and topology.</param>
    /// <param name="offers">Every shape the cluster has (used when <paramref name="room"/> is null, to say what there is instead).</param>
    public static string? Impossible(TpuShape shape, int chips, TpuCapacity? room, IReadOnlyList<TpuCapacity> offers)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(offers);
        if (room is not null && chips <= room.TotalChips)
        {
            return null;
        }

        const string Retry = "a Failed lease stays Failed: sign a new request and create the Lease again";
        if (room is null)
        {
            var all = offers.Where(o => o.TotalChips > 0).ToList();
            var sameAccelerator = all.Where(o => o.Shape.Accelerator == shape.Accelerator).ToList();
            var field = sameAccelerator.Count > 0 || all.Count == 0 ? "spec.request.payload.topology" : "spec.request.payload.accelerator";
            var what = sameAccelerator.Count > 0
                ? $"no node pool of {shape.Accelerator} has topology {shape.Topology}"
                : $"no node pool in this cluster is {shape.Accelerator} {shape.Topology}";
            var offered = all.Count == 0
                ? "this cluster has no usable TPU slices at all"
                : "this cluster offers " + string.Join(", ", (sameAccelerator.Count > 0 ? sameAccelerator : all).Select(Describe));
            return $"{field}: {what}; {offered}; sign a request for an offered accelerator and topology (kubectl rpoi offers); {Retry}";
        }

        var slices = room.TotalChips / Math.Max(1, shape.ChipsPerSlice);
        var down = room.UnusableSlices > 0
            ? $" ({room.UnusableSlices} more slice(s) of {room.UnusableSlices * shape.ChipsPerSlice} chips are not usable now: cordoned, NotReady, under maintenance or missing hosts)"
            : string.Empty;
        var fix = room.TotalChips > 0
            ? $"ask for at most {room.TotalChips} chips of {shape.Topology}, or another topology (kubectl rpoi offers)"
            : "ask for another topology (kubectl rpoi offers), or wait until the slices are usable again";
        return $"spec.request.payload.chips is {chips}, more than {shape.Accelerator} {shape.Topology} can ever hold here: "
            + $"{room.TotalChips} chips in {slices} usable slice(s) in total{down}; {fix}; {Retry}";
    }

    private static string Describe(TpuCapacity c) => $"{c.Shape.Accelerator} {c.Shape.Topology} (up to {c.TotalChips} chips)";
}
