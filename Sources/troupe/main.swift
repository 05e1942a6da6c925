import ArgumentParser
import TroupeCLI

Troupe.main()
