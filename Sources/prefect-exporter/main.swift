import ExporterCLI
import Foundation

// The executable is deliberately thin: everything lives in ExporterCLI, where tests can reach it.
exit(await ExporterMain.main())
