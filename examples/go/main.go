// A Go service using kafka-sidecar: no Kafka library, only the standard library (net/http, encoding/json).
//
//	service backend -port 8080
//	    the reactive consumer's backend: POST /kafka/records gets batches and answers a status per
//	    record (DEADLETTER for a value with "fail": true, else SUCCESS); GET /health; GET /records
//	service produce -sidecar http://127.0.0.1:8442 -topic orders '{"key":"o1","value":{...},"headers":{...}}' ...
//	    POST /producers/{topic}; prints the sidecar's reply (partition and offset of each record)
//	service consume -sidecar http://127.0.0.1:8442 -topic orders -group g -count 2
//	    the active-consumer loop (REST Proxy v2): create an instance, subscribe, poll until -count
//	    records arrived (-count 0: until Ctrl-C), commit them, delete the instance; prints each record as a JSON line
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

const v2 = "application/vnd.kafka.v2+json"

// Record is one record as the sidecar delivers it (reactive batch) or returns it (active consumer).
type Record struct {
	Topic     string            `json:"topic"`
	Partition int               `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp int64             `json:"timestamp"`
	Key       json.RawMessage   `json:"key"`
	Value     json.RawMessage   `json:"value"`
	Headers   map[string]string `json:"headers"`
}

// Batch is the body of the reactive consumer's POST.
type Batch struct {
	Consumer string   `json:"consumer"`
	Records  []Record `json:"records"`
}

// Received is a delivered record with the name of the consumer that sent it.
type Received struct {
	Consumer string `json:"consumer"`
	Record
}

// Status is the backend's answer for one record.
type Status struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Status    string `json:"status"`
	Error     string `json:"error,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func wantsFailure(value json.RawMessage) bool {
	var fields struct {
		Fail bool `json:"fail"`
	}
	return json.Unmarshal(value, &fields) == nil && fields.Fail
}

func backend(port int) error {
	var mu sync.Mutex
	received := []Received{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"status": "UP"})
	})
	mux.HandleFunc("GET /records", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		writeJSON(w, 200, map[string][]Received{"records": received})
	})
	mux.HandleFunc("POST /kafka/records", func(w http.ResponseWriter, r *http.Request) {
		var batch Batch
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			writeJSON(w, 400, map[string]string{"detail": "the body is not a batch: " + err.Error(), "field": "body"})
			return
		}
		statuses := make([]Status, 0, len(batch.Records))
		mu.Lock()
		for _, record := range batch.Records {
			received = append(received, Received{batch.Consumer, record})
			status := Status{Topic: record.Topic, Partition: record.Partition, Offset: record.Offset, Status: "SUCCESS"}
			if wantsFailure(record.Value) {
				status.Status, status.Error = "DEADLETTER", "the order asked to fail"
			}
			statuses = append(statuses, status)
			log.Printf("batch from %s: %d@%d %s", batch.Consumer, record.Partition, record.Offset, status.Status)
		}
		mu.Unlock()
		writeJSON(w, 200, map[string][]Status{"statuses": statuses})
	})
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdown)
	}()
	log.Printf("backend listening on http://%s", listener.Addr())
	if err := server.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// call sends a REST Proxy v2 request and decodes a JSON reply into out (when out is not nil).
func call(method, target string, body any, accept string, out any) error {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(data)
	}
	request, err := http.NewRequest(method, target, reader)
	if err != nil {
		return err
	}
	request.Header.Set("content-type", v2)
	if accept == "" {
		accept = v2
	}
	request.Header.Set("accept", accept)
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	text, err := io.ReadAll(response.Body)
	if err != nil {
		return err
	}
	if response.StatusCode >= 300 {
		return fmt.Errorf("%s %s: HTTP %d %s", method, target, response.StatusCode, text)
	}
	if out != nil && len(text) > 0 {
		return json.Unmarshal(text, out)
	}
	return nil
}

func produce(sidecar, topic string, records []json.RawMessage) error {
	body, err := json.Marshal(map[string]any{"records": records})
	if err != nil {
		return err
	}
	response, err := http.Post(sidecar+"/producers/"+url.PathEscape(topic), "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer response.Body.Close()
	reply, err := io.ReadAll(response.Body)
	if err != nil {
		return err
	}
	// 200: every record acknowledged by the broker; 207: some were not; 4xx: nothing was sent.
	if response.StatusCode != 200 {
		return fmt.Errorf("produce: HTTP %d %s", response.StatusCode, reply)
	}
	fmt.Println(string(bytes.TrimSpace(reply)))
	return nil
}

func consume(sidecar, topic, group string, count int, timeout time.Duration) (err error) {
	var created struct {
		BaseURI string `json:"base_uri"`
	}
	settings := map[string]string{
		"name": "go-example", "format": "json", "auto.offset.reset": "earliest", "auto.commit.enable": "false",
	}
	if err := call("POST", sidecar+"/consumers/"+url.PathEscape(group), settings, "", &created); err != nil {
		return err
	}
	base := created.BaseURI
	defer func() {
		if deleteErr := call("DELETE", base, nil, "", nil); err == nil {
			err = deleteErr
		}
	}()
	if err := call("POST", base+"/subscription", map[string][]string{"topics": {topic}}, "", nil); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	seen := 0
	deadline := time.Now().Add(timeout)
	for ctx.Err() == nil && (count == 0 || seen < count) {
		if count > 0 && time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d records within %s", seen, count, timeout)
		}
		var records []Record
		if err := call("GET", base+"/records?timeout=1000", nil, "application/vnd.kafka.json.v2+json", &records); err != nil {
			return err
		}
		if len(records) == 0 {
			continue
		}
		offsets := make([]map[string]any, 0, len(records))
		for _, record := range records {
			line, _ := json.Marshal(record)
			fmt.Println(string(line))
			// Commit what was processed: the next offset of each record's partition.
			offsets = append(offsets, map[string]any{"topic": record.Topic, "partition": record.Partition, "offset": record.Offset + 1})
		}
		seen += len(records)
		if err := call("POST", base+"/offsets", map[string]any{"offsets": offsets}, "", nil); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: service backend|produce|consume [flags] (see the top of main.go)")
		os.Exit(2)
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	port := flags.Int("port", 8080, "backend port on 127.0.0.1")
	sidecar := flags.String("sidecar", "http://127.0.0.1:8442", "the sidecar's base URL")
	topic := flags.String("topic", "orders", "topic")
	group := flags.String("group", "go-example", "consumer group")
	count := flags.Int("count", 1, "records to consume")
	timeout := flags.Duration("timeout", 30*time.Second, "longest wait for the records")
	_ = flags.Parse(os.Args[2:])

	var err error
	switch os.Args[1] {
	case "backend":
		err = backend(*port)
	case "produce":
		records := make([]json.RawMessage, 0, flags.NArg())
		for _, arg := range flags.Args() {
			records = append(records, json.RawMessage(arg))
		}
		err = produce(*sidecar, *topic, records)
	case "consume":
		err = consume(*sidecar, *topic, *group, *count, *timeout)
	default:
		err = fmt.Errorf("unknown command %q: backend, produce or consume", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
