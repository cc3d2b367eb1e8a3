package storable

// ScanJSON is scanJSON, for the tests of package storable_test.
var ScanJSON = scanJSON
