¢H
	
tcp://10.0.0.8:41234"(rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7