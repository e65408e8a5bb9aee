// Helpers of LadonCheckpointTests.
import Foundation
import LadonTestSupport

/// The committed fixtures of this target (`Fixtures/`, written by Scripts/make_checkpoint_fixtures.py and
/// Scripts/make_resnest_fixtures.py).
let Fixtures = FixtureFolder(bundle: .module)
