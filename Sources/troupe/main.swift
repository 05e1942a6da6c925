import ArgumentParser
import TroupeCLI
import TroupeRuntime

TroupeLogging.bootstrap()
Troupe.main()
