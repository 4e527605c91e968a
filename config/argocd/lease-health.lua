-- Argo CD health check for rpoi.io/Lease (docs/install.md, "Argo CD").
-- Healthy once the renter has the chips or the lease is settled; Degraded when it failed;
-- Progressing otherwise. A status written for an older generation is not trusted yet.
local hs = { status = "Progressing", message = "Waiting for the operator" }
if obj.status == nil or obj.status.phase == nil then
  return hs
end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "The operator has not yet observed the latest spec"
  return hs
end
local reason = ""
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" and c.message ~= nil and c.message ~= "" then
      reason = c.message
    end
  end
end
local phase = obj.status.phase
if phase == "Active" then
  hs.status = "Healthy"
  hs.message = "Active: " .. tostring(obj.status.chips or "?") .. " chips on " .. tostring(obj.status.nodePool or "?")
elseif phase == "Settled" then
  hs.status = "Healthy"
  hs.message = "Settled by the escrow"
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = "Failed: " .. reason
elseif phase == "AwaitingRatings" then
  -- Nothing is wrong: the nodes are returned and the lease waits for the ratings until the deadline.
  hs.status = "Healthy"
  hs.message = "Returned; waiting for ratings until " .. tostring(obj.status.ratingDeadline or "?")
else
  hs.status = "Progressing"
  hs.message = phase
  if obj.status.queuePosition ~= nil then
    hs.message = phase .. " (queue position " .. tostring(obj.status.queuePosition) .. ")"
  end
end
return hs
