// The CLI's tests check Unix file modes (0600 key files), SIGTERM and the real kubectl: they run on Linux and macOS.
[assembly: System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
