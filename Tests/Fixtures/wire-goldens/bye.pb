â
run finished