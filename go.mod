module roster

go 1.26
