//go:build !race

package expose

const raceEnabled = false
