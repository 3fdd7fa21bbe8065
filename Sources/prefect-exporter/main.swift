import ExporterCLI
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The executable is deliberately thin: everything lives in ExporterCLI, where tests can reach it.
exit(await ExporterMain.main())
