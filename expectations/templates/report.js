(function(){
  var box=document.getElementById('filter'), btn=document.getElementById('expand');
  if(box){box.addEventListener('input',function(){
    var q=box.value.trim().toLowerCase();
    document.querySelectorAll('details.doc').forEach(function(d){
      var any=false; d.querySelectorAll('tbody tr').forEach(function(tr){
        var hit=!q||tr.textContent.toLowerCase().indexOf(q)>=0; tr.style.display=hit?'':'none'; any=any||hit;});
      d.style.display=any?'':'none'; if(q&&any){d.open=true;}
    });});}
  if(btn){btn.addEventListener('click',function(){
    var open=btn.textContent==='expand all';
    document.querySelectorAll('details.doc').forEach(function(d){d.open=open;});
    btn.textContent=open?'collapse all':'expand all';});}
})();
