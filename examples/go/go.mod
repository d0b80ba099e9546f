module example.com/kafka-sidecar-go-example

go 1.22
