module github.com/push-gateway/push-gateway

go 1.26.0

require (
	github.com/VictoriaMetrics/easyproto v1.2.0
	github.com/alecthomas/kong v1.17.0
	github.com/prometheus/client_model v0.6.3
	github.com/prometheus/common v0.73.1
	go.uber.org/atomic v1.12.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/pandatix/go-abnf v0.5.3 // indirect
)
