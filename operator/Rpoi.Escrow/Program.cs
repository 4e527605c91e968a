using Rpoi.Escrow;

// π, the escrow: `dotnet run --project operator/Rpoi.Escrow` serves on http://127.0.0.1:5080 with a
// SQLite file under ./.rpoi/escrow (settings: see docs/escrow.md).
var app = await EscrowHost.BuildFromConfiguration(args);
await app.RunAsync();
