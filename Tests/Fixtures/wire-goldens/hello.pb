¢C

py-actor-1ïÍ«‰gE# *troupe 0.1 (abc1234)2	entropies2relay8